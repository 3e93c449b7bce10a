"""nmt: the RNN Encoder-Decoder of Cho et al. (2014) for neural machine translation."""

__version__ = "0.1.0"
