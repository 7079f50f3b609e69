"""``python -m pipeline.synth_nlp``: build an NLP round without the Typer CLI."""
import sys

from pipeline.synth_nlp.generate import main

sys.exit(main())
