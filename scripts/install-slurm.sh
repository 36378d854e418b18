#!/usr/bin/env bash
# Install a one-node SLURM (Debian's slurmctld, slurmd, slurm-client, munge) and submitit, for the tests that run
# jobs on a real cluster (tests/slurm_cluster.py). Needs root and apt for the Debian packages; does nothing when
# everything is already there. The packages' own daemons are never left running: the test fixture starts private
# ones on free ports, and a package-started munged or slurmctld would hold the default socket and ports.
set -euo pipefail
PYTHON=${PYTHON:-python3}
SUBMITIT=submitit==1.5.4

missing=0
for cmd in sbatch slurmctld slurmd munged; do
  command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing=1
done

if [ "$missing" = 1 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-slurm.sh: slurm/munge missing and this is not root with apt-get; the SLURM tests will skip" >&2
  else
    # policy-rc.d answering 101 keeps invoke-rc.d from starting the services during the install.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy"
      chmod 0755 "$policy"
      trap 'rm -f "$policy"' EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
    # In case a service manager started them anyway (systemd ignores policy-rc.d on some setups).
    for svc in slurmd slurmctld munge; do
      if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now "$svc" >/dev/null 2>&1 || true
      elif [ -x "/etc/init.d/$svc" ]; then
        "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
      fi
    done
  fi
fi

if ! "$PYTHON" -c "import submitit" 2>/dev/null; then
  PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install --quiet "$SUBMITIT"
fi

# A daemon running on the default socket/config (not a fixture's: those name their own) would be a package's.
for pid in $(for name in munged slurmctld slurmd; do pgrep -x "$name" || true; done); do
  if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -Eq -- '--socket=|-f [^ ]*slurm\.conf'; then
    echo "install-slurm.sh: warning: $(tr '\0' ' ' <"/proc/$pid/cmdline") (pid $pid) runs with the default" \
      "config; stop it, or it may clash with the test cluster" >&2
  fi
done
exit 0
