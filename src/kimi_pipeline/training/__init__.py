"""Training building blocks: the base tokenizer, the chat template and loss masking for SFT."""
