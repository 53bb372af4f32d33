"""The training tools behind `spacy project run all`: registry assets, corpus readers, static vectors,
the teacher's architecture and the annotate step, packaging, the summary and the command line.

They need the ``teacher`` extra (spacy-transformers, torch) where they run the teacher; the runtime
modules one level up never import them, and a packaged student carries none of them."""
