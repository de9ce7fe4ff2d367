"""Compute and storage backends, and the interfaces they implement."""
