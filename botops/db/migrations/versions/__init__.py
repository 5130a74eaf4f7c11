"""The revisions, oldest first by number: ``NNNN_what_it_does.py``, each with upgrade and downgrade."""
