# Policy Nudge: slim image, non-root user. Build: docker build -t policy-nudge .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
RUN useradd --create-home --uid 10001 nudge
COPY pyproject.toml README.md alembic.ini ./
COPY service ./service
COPY jobs ./jobs
COPY migrations ./migrations
COPY templates ./templates
COPY content ./content
RUN pip install -e . && chown -R nudge:nudge /app
USER nudge
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["sh", "-c", "nudge db upgrade && nudge serve --host 0.0.0.0 --port 8000"]
