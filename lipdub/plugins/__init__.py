"""Built-in lipdub plugins, registered through the same hooks a third party uses."""
