# The kind node image, from the Debian base (scripts/debian-base.sh) instead of
# kind's debian:trixie-slim, with kind's own node files (entrypoint, systemd units,
# containerd config) at the pinned kind version and the binaries that
# scripts/kind/build-bins.sh built from the Go module proxy. Built by
# scripts/build-kind-node.sh, which then preloads the Kubernetes images into the
# node's containerd (kind's layout: the store under /var/lib/containerd) and commits
# the result. The package list is kind's images/base/Dockerfile's, less what only
# rootless or storage-class setups need (fuse-overlayfs, nfs-common, open-iscsi).
ARG BASE
FROM $BASE
RUN apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      systemd conntrack iptables nftables iproute2 ethtool util-linux mount kmod \
      libseccomp2 pigz e2fsprogs bash ca-certificates curl jq procps runc \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/doc/* /usr/share/man/* \
    && find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete \
    && rm -f /lib/systemd/system/multi-user.target.wants/* \
    && rm -f /etc/systemd/system/*.wants/* \
    && rm -f /lib/systemd/system/local-fs.target.wants/* \
    && rm -f /lib/systemd/system/sockets.target.wants/*udev* \
    && rm -f /lib/systemd/system/sockets.target.wants/*initctl* \
    && rm -f /lib/systemd/system/basic.target.wants/* \
    && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \
    && ln -sf /usr/lib/systemd/systemd /sbin/init
COPY kind-files/ /
COPY node-files/ /
COPY bin/kubelet bin/kubeadm bin/kubectl /usr/bin/
COPY bin/containerd bin/containerd-shim-runc-v2 bin/ctr bin/crictl /usr/local/bin/
COPY bin/cni/ /opt/cni/bin/
ARG KUBERNETES_VERSION
RUN chmod 0755 /usr/local/bin/* /kind/bin/* /opt/cni/bin/* /usr/bin/kube* \
    && rm -f /etc/systemd/system/containerd-fuse-overlayfs.service \
    && systemctl enable kubelet.service containerd.service undo-mount-hacks.service \
    && systemctl mask systemd-binfmt.service \
    && mkdir -p /etc/kubernetes/manifests \
    && ctr oci spec \
        | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
        | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json \
    && printf '%s' "$KUBERNETES_VERSION" > /kind/version
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
