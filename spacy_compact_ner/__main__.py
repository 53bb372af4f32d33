"""`python -m spacy_compact_ner`: the command line (see `spacy_compact_ner.tools.cli`)."""

from spacy_compact_ner.tools.cli import app

if __name__ == "__main__":
    app(prog_name="spacy-compact-ner")
