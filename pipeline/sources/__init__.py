"""Source readers, one module per source kind. ``READERS`` maps a params ``kind`` to its class."""
