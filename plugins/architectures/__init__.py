"""Built-in architectures (family ``architectures``): name -> module."""

PLUGINS = {
    "simple_cnn": ".simple_cnn",
    "cnn2d_bmvc": ".cnn2d_bmvc",
    "cnn3d": ".cnn3d",
    "gaitset": ".gaitset",
    "cnn_rnn": ".cnn_rnn",
    "transfer": ".transfer",
    "har_cnn1d": ".har_cnn1d",
    "har_lstm": ".har_lstm",
}
