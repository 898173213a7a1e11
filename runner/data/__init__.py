"""Data: sample records, the synthetic gait generator, preprocessing and the tf.data pipeline."""
