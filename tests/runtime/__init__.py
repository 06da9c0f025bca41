"""Tests of the runtime without any UI: one chat turn, the chat history store, the model handle."""
