"""The Metronome API emulator: executes request bodies with the API's semantics and refuses what it refuses."""
