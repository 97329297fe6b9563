"""Layer 2, data: corpora (embedded BBC News, files, ``hf:``, the stdlib code corpus), the
tokenizers, the packed token cache and the batches the trainer reads. Imports only core."""
