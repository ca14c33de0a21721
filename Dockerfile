# RATS Studio: serves the Gradio app on port 7860 (Shapes World by default, offline).
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT=7860 GRADIO_ANALYTICS_ENABLED=False
COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir torch==2.13.0 && pip install --no-cache-dir -c constraints.txt -r requirements.txt
COPY . .
RUN pip install --no-cache-dir --no-deps .
# Models come from environment variables: RATS_MODEL (the model opened at start, a diffusers
# directory, e.g. a mounted volume), RATS_FLUX_DEV / RATS_FLUX_SCHNELL / RATS_SD35_MEDIUM /
# RATS_SD35_LARGE (presets in the dropdown), RATS_HPSV2_CHECKPOINT, RATS_PICKSCORE_MODEL (rewards).
# This image listens on 0.0.0.0, so training is off unless RATS_AUTH=user:password protects the page
# (or RATS_TRAINING=on forces it); RATS_RUNS_DIR puts runs and uploads on a volume (README, "Deploy").
EXPOSE 7860
CMD ["python", "app.py"]
