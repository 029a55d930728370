# The GAN Demo Hub, or one of its apps: docker build -t gan-hub . && docker run -p 7860:7860 gan-hub
# APP=hub (default) serves every app; APP=inpaint|sketch2photo|season|pulse|glasses|text2image serves one.
FROM python:3.11-slim

# libgl/glib for OpenCV's highgui-free wheel are not needed (headless); libgomp for torch CPU kernels.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*

RUN useradd -m -u 1000 user
USER user
ENV HOME=/home/user \
    PATH=/home/user/.local/bin:$PATH \
    HF_HOME=/home/user/.cache/huggingface \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    GRADIO_ANALYTICS_ENABLED=False \
    PYTHONUNBUFFERED=1 \
    APP=hub
WORKDIR /home/user/app

# CPU torch from PyTorch's CPU index (the default PyPI wheel is the multi-GB CUDA build).
COPY --chown=user requirements.txt .
RUN pip install --no-cache-dir --user --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt

COPY --chown=user . .
# The manifest's offline set (weights inside PyPI wheels or shipped in this repository); everything
# else is fetched on first use into the HF_HOME volume.
RUN python -m core.weights fetch --offline

VOLUME /home/user/.cache/huggingface
EXPOSE 7860
CMD ["sh", "-c", "if [ \"$APP\" = hub ]; then exec python -m apps.hub; else exec python apps/$APP/app.py; fi"]
