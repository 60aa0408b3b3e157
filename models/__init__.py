"""Networks: plain nn.Modules. Each takes its input shape (channels, classes, vocabulary) from
the datamodule, by keyword, and says which inputs it takes with the class attribute `input_kind`
("image" or "tokens")."""
