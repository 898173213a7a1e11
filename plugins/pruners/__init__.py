"""Built-in filter pruners (family ``pruners``): name -> module."""

PLUGINS = {"l1_percentile": ".l1_percentile"}
