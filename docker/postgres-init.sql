-- The Prefect server keeps its state in its own database next to ccv's (POSTGRES_DB=ccv).
CREATE DATABASE prefect;
