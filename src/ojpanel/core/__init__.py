"""What every layer shares (the bottom floor): figure style, and below it config and errors."""
