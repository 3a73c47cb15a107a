"""Running a trained generator on new images: the translator (resize, tile-free fit, batch-norm behaviour) and which files it reads and writes."""
