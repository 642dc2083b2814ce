"""Build the image once, push it, and run it per environment: the delivery half of the flow.

model bundle -> image (build) -> registry digest -> environment (deploy / render)
"""
