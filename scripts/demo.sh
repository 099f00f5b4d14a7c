#!/usr/bin/env bash
# Demo: make a small VM from real files, export it with playbooks/export_all.yml on localhost.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_system_tools qemu-img:qemu-utils mkfs.ext4:e2fsprogs
ensure_venv "$ROOT/scripts/requirements.txt"
use_collection

DEMO=${OVATOOL_DEMO_DIR:-$ROOT/demo-output}
mkdir -p "$DEMO"
if [ ! -f "$DEMO/vms/demo-appliance/demo-appliance.vmx" ]; then
  echo "Making the demo VM (ext4 with real files from this machine, mostly empty) in $DEMO/vms"
  (cd "$ROOT/tests" && python -m support.vmfactory demo "$DEMO" >/dev/null)
fi

mkdir -p "$DEMO/shelf"
cd "$ROOT"
# export, verify, then "upload" to a local folder (file://); s3://, sftp:// and https:// work the same way.
# No VMware runs on this machine, so power management is off for the demo VM.
ansible-playbook playbooks/export_all.yml -i localhost, \
  -e ansible_connection=local -e "ansible_python_interpreter=$(command -v python)" \
  -e "{\"ovatool_vm_search_paths\": [\"$DEMO/vms\"], \"ovatool_output_dir\": \"$DEMO/ova\",
       \"ovatool_force\": true, \"ovatool_upload_dest\": \"file://$DEMO/shelf/\",
       \"ovatool_manage_power\": false}"

echo
echo "OVA written (and verified):"
ls -l "$DEMO"/ova/*.ova
echo "Uploaded copy:"
ls -l "$DEMO"/shelf/*.ova
