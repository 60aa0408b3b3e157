"""LightningDataModules: plain values in (root, batch size, seeds), batches out.

Each says which inputs it gives with the class attribute `input_kind` ("image" or "tokens") and,
after `setup()`, the shapes a model needs in `dims` (in_channels, image_size, num_classes, ...).
"""
