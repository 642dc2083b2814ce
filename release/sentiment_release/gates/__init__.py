"""Gates: the checks each environment runs on an image, and the evidence they leave."""
