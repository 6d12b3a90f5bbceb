"""mcunet-lite: tiny deep learning on microcontrollers, rebuilt from MCUNet (V1 and V2).

Start with `zoo` (models), `profile` (MACs, Flash, peak SRAM) and the `mcunet-lite` command.
"""
__version__ = "0.1.0"
