#!/bin/sh
# Compiles the fast path's BPF program: build-bpf.sh SOURCE OUTPUT. Called by binding.gyp (action
# "fastpath_bpf_object") when clang and libbpf's headers are present.
# The multiarch include directory holds <asm/types.h>, which <linux/types.h> needs and which
# clang -target bpf does not search by itself.
set -eu
src=$1
out=$2
multiarch=$(gcc -print-multiarch 2>/dev/null || echo "$(uname -m)-linux-gnu")
exec clang -O2 -g -target bpf -Wall -Werror -I"/usr/include/$multiarch" -I"$(dirname "$src")" -c "$src" -o "$out"
