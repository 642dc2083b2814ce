"""Build the image once, push it, and run it per environment: the delivery step of the flow.

model bundle -> image (build) -> registry digest -> environment (a deploy target)
"""
