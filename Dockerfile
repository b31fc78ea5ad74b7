# One image for every service, the emulator and the CLI; the command picks which runs.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 LAVA_LOG_FORMAT=json
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared shared
COPY services services
COPY emulators emulators
COPY lava lava
RUN pip install --no-cache-dir ".[local]" && useradd --uid 10001 lava
USER 10001
EXPOSE 8080
CMD ["lava", "--help"]
