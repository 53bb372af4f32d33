"""Knowledge distillation: the losses, the stored teacher distributions, the corpus reader and the
annotate step that runs the teacher."""
