# Sourced by the build scripts. .cargo/config.toml builds for x86-64-v3 (AVX2/FMA); on an
# older x86-64 CPU build for the baseline instead, or every binary would die of SIGILL.
if [ "$(uname -m)" = x86_64 ] && ! grep -qw avx2 /proc/cpuinfo; then
    export RUSTFLAGS="${RUSTFLAGS:--C target-cpu=x86-64}"
fi
