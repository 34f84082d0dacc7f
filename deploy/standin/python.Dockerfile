# A stand-in for python:3.12-slim-bookworm, for machines that reach no container registry
# (deploy/standin/build.sh builds it; `make image-test` uses it). The base is Debian bookworm's
# own Python (3.11) from an mmdebstrap tarball, imported as STANDIN_ROOTFS; what the official
# image has and the project's Dockerfile relies on is added here: /usr/local/bin/python, and the
# venv module (python3-venv, in the tarball).
ARG STANDIN_ROOTFS=loss-service-standin/rootfs-python:bookworm
FROM ${STANDIN_ROOTFS}

# The build machine's CA bundle: pip inside `docker build` must trust whatever the machine
# trusts to reach the package index (a proxy's CA, say). PIP_CERT points pip at it.
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    LANG=C.UTF-8

RUN ln -s /usr/bin/python3 /usr/local/bin/python \
    && python -c "import venv, ssl, sys; print(sys.version)"

CMD ["python3"]
