# kube-proxy's image: the binary plus the iptables, nftables and conntrack tools it
# runs, from the Debian base (upstream's is distroless-iptables; no registry here).
ARG BASE
FROM $BASE
RUN apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      iptables nftables conntrack kmod \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/doc/* /usr/share/man/*
COPY kube-proxy /usr/local/bin/kube-proxy
