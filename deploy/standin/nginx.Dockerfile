# A stand-in for the official nginx image, for machines that reach no container registry
# (deploy/standin/build.sh builds it). Debian bookworm's nginx (1.22) from an mmdebstrap tarball,
# imported as STANDIN_ROOTFS. It lacks `resolve` on upstream servers (nginx >= 1.27.3), so the
# configuration it runs lists the replicas by name, resolved once at start
# (tests/system/test_image.py renders it from deploy/nginx/nginx.conf).
ARG STANDIN_ROOTFS=loss-service-standin/rootfs-nginx:bookworm
FROM ${STANDIN_ROOTFS}

# As in the official image: logs to the container's output, the temporary directories' parent.
RUN ln -sf /dev/stdout /var/log/nginx/access.log \
    && ln -sf /dev/stderr /var/log/nginx/error.log \
    && install -d -m 0755 /var/cache/nginx

EXPOSE 8000 8001
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
