# The ccv image: the CLI, the core and the Prefect flows (`ccv[flows]`). docker-compose.yml runs
# it as the one-shot migration (`ccv db upgrade`) and as the Prefect worker, which deploys
# prefect.yaml from /app and runs the flows there.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The package and its dependencies first: editing a flow does not reinstall them.
COPY pyproject.toml README.md ./
COPY ccv ./ccv
COPY migrations ./migrations
RUN pip install ".[flows,metrics]"

COPY flows ./flows
COPY prefect.yaml ./

# Not root. /requirements is where the extract flow looks (CCV_REQUIREMENTS_DIR): a volume
# mounted there starts out owned by this user.
RUN useradd --system --create-home --uid 10001 ccv \
    && mkdir /requirements \
    && chown ccv /requirements
USER ccv

CMD ["ccv", "--help"]
