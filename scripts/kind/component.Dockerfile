# One Kubernetes component image (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, pause, coredns): the static binary alone, under the name kubeadm
# asks for. No registry is reachable, so these are built here and preloaded into the
# node image by scripts/build-kind-node.sh. The binaries are static (CGO off; pause
# linked -static), so nothing else is needed; kubeadm mounts the node's CA
# certificates into the pods that need them.
FROM scratch
ARG BINARY
COPY $BINARY /usr/local/bin/$BINARY
ENTRYPOINT []
