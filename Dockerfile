# pgdeck's image: the CLI for the CronJobs in deploy/ and for `pgdeck restore-test --in-cluster`.
# Build: docker build -t pgdeck:0.1.0 .   (see deploy/README.md)
#
# No PostgreSQL client in the image: pgdeck's restore sends each statement itself through
# psycopg (whose binary wheel carries its own libpq), and nothing pgdeck runs in production
# calls psql, pg_dumpall, pg_restore or pg_isready. Only `pgdeck demo` needs PostgreSQL's
# server binaries (initdb, pg_ctl), which a cluster image has no use for.

# Two stages: the build stage's pip, its cache and the source tree stay out of the image.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/pgdeck
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY services ./services
COPY sandbox ./sandbox
COPY tui ./tui
COPY widgets ./widgets
# The pinned constraints: kubernetes and botocore disagree on python-dateutil, and only one
# resolver run with these pins installs a set that works (see the Makefile).
RUN /opt/pgdeck/bin/pip install -c constraints.txt . \
 && /opt/pgdeck/bin/pip uninstall --yes pip setuptools

FROM python:3.11-slim
# A numeric user: Kubernetes can only prove runAsNonRoot for a numeric USER; 10001 is the
# runAsUser of the CronJobs in deploy/.
RUN groupadd --system --gid 10001 pgdeck \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/pgdeck --create-home pgdeck
COPY --from=build /opt/pgdeck /opt/pgdeck
ENV PATH=/opt/pgdeck/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /home/pgdeck
ENTRYPOINT ["pgdeck"]
CMD ["--help"]
