#!/bin/bash
# Runs inside the chroot of a freshly debootstrapped tree (scripts/build-image.sh copies this folder
# to /tmp/hiveboot-image and calls it with SUITE, MIRROR, ROOT_UUID, HIVEBOOT_URL,
# ROOT_PASSWORD_HASH, KERNEL_ARGS in the environment). Turns the tree into the golden image's root:
# hiveboot's files and units, an initramfs that logs in from iBFT, GRUB for BIOS and UEFI, and no
# per-host state.
set -euo pipefail
SRC=/tmp/hiveboot-image
step() { echo "== $*"; }

step "apt sources ($SUITE)"
rm -f /etc/apt/sources.list
cat >/etc/apt/sources.list.d/debian.sources <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.debian.org/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

step "hiveboot files"
cp -a "$SRC/rootfs/." /
chmod 0755 /usr/local/sbin/hiveboot-*
if [ -n "$HIVEBOOT_URL" ]; then
  sed -i "s|^#\?HIVEBOOT_URL=.*|HIVEBOOT_URL=$HIVEBOOT_URL|" /etc/hiveboot/agent.conf
fi

step "iSCSI: initramfs login from iBFT, initiator name made at boot"
# The name in the image is a placeholder: hiveboot-boot-identity writes the iBFT one at every boot,
# before iscsid starts (and open-iscsi makes a random one when a machine boots without iBFT).
printf 'GenerateName=yes\n' >/etc/iscsi/initiatorname.iscsi
# A root disk rides out a restart of its target: I/O waits up to 10 minutes for the session to
# come back rather than failing after open-iscsi's default 2 minutes.
sed -i 's/^node.session.timeo.replacement_timeout = .*/node.session.timeo.replacement_timeout = 600/' /etc/iscsi/iscsid.conf
grep -q '^node.session.timeo.replacement_timeout = 600$' /etc/iscsi/iscsid.conf

step "initramfs"
kver=$(ls /lib/modules | sort -V | tail -n1)
update-initramfs -u -k "$kver"
# The build must have put the iBFT pieces in: fail here rather than on a host that cannot find its root.
lsinitramfs "/boot/initrd.img-$kver" >/tmp/initrd.list
for need in sbin/iscsistart etc/iscsi.initramfs iscsi_ibft.ko iscsi_tcp.ko virtio_net.ko e1000e.ko r8169.ko; do
  grep -q "$need" /tmp/initrd.list || { echo "initramfs lacks $need" >&2; exit 1; }
done
rm /tmp/initrd.list

step "systemd units"
systemctl enable systemd-networkd.service systemd-resolved.service systemd-timesyncd.service \
  hiveboot-boot-identity.service hiveboot-agent.service hiveboot-k3s-killall.service k3s-agent.service
systemctl set-default multi-user.target
# systemd-resolved's stub: K3s notices it and hands pods the real upstream servers.
ln -sf ../run/systemd/resolve/stub-resolv.conf /etc/resolv.conf
mkdir -p /etc/rancher/k3s/config.yaml.d
if [ -x /usr/local/bin/k3s ]; then
  for tool in kubectl crictl ctr; do ln -sf k3s "/usr/local/bin/$tool"; done
fi

step "no per-host state"
: >/etc/machine-id                       # empty: systemd makes one at first boot and commits it
rm -f /var/lib/dbus/machine-id && ln -s /etc/machine-id /var/lib/dbus/machine-id
rm -f /etc/hostname                      # hiveboot-agent writes the host's own
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n' >/etc/hosts
rm -rf /etc/rancher/node /var/lib/rancher
rm -f /etc/ssh/ssh_host_*               # remade at boot by hiveboot-boot-identity
if [ -n "$ROOT_PASSWORD_HASH" ]; then usermod -p "$ROOT_PASSWORD_HASH" root; else usermod -L root; fi

step "fstab"
cat >/etc/fstab <<EOF
# The root is the host's iSCSI LUN, logged in by the initramfs from iBFT.
UUID=$ROOT_UUID / ext4 defaults,errors=remount-ro 0 1
EOF

step "GRUB for BIOS and UEFI"
# /vmlinuz and /initrd.img are the kernel package's own symlinks: a kernel upgraded on a host
# boots without regenerating grub.cfg.
kernel=/boot/vmlinuz-$kver initrd=/boot/initrd.img-$kver
[ -e /vmlinuz ] && [ -e /initrd.img ] && kernel=/vmlinuz initrd=/initrd.img
cmdline="root=UUID=$ROOT_UUID ro console=tty0 console=ttyS0,115200n8${KERNEL_ARGS:+ $KERNEL_ARGS}"
mkdir -p /boot/grub /boot/hiveboot-grub
for platform in i386-pc x86_64-efi; do
  mkdir -p "/boot/grub/$platform"
  cp /usr/lib/grub/$platform/*.mod /usr/lib/grub/$platform/*.lst "/boot/grub/$platform/"
done
cat >/boot/grub/grub.cfg <<EOF
# hiveboot golden image: same file for BIOS (i386-pc) and UEFI (x86_64-efi) GRUB.
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
set default=0
menuentry "Debian ($SUITE), hiveboot" {
  linux $kernel $cmdline
  initrd $initrd
}
menuentry "Debian ($SUITE), hiveboot, previous kernel" {
  linux /vmlinuz.old $cmdline
  initrd /initrd.img.old
}
EOF
cat >/tmp/early.cfg <<EOF
search --no-floppy --fs-uuid --set=root $ROOT_UUID
set prefix=(\$root)/boot/grub
EOF
grub-mkimage -O i386-pc -o /boot/hiveboot-grub/core.img -c /tmp/early.cfg -p /boot/grub \
  biosdisk part_msdos ext2 search search_fs_uuid
grub-mkimage -O x86_64-efi -o /boot/hiveboot-grub/BOOTX64.EFI -c /tmp/early.cfg -p /boot/grub \
  part_msdos part_gpt ext2 fat search search_fs_uuid
rm /tmp/early.cfg
echo "$kver" >/boot/hiveboot-grub/kernel-version
echo "$cmdline" >/boot/hiveboot-grub/cmdline

step "clean"
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log /var/log/apt/* /tmp/* /root/.bash_history
find /var/log -type f -name '*.gz' -delete
