"""UI: the attnlens command line, the Gradio app, and HTML/plot rendering."""
