"""RATS Studio: `python app.py` serves the Gradio app (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT honoured)."""

from rats_app.ui.app import main

if __name__ == "__main__":
    main()
