"""Moving one image up the environments, on evidence; rolling back; the whole pipeline."""
