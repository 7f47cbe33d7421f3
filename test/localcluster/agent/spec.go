package agent

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kura-db/kura/test/localcluster"
	"github.com/kura-db/kura/test/localcluster/containerinit"
)

type imageKind int

const (
	imageMariaDB imageKind = iota
	imageMySQL
	imageKura
)

// resolveImage maps an image reference onto what runs it on this host.
func (a *Agent) resolveImage(image string) (imageKind, error) {
	ref := image
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	repo, tag := ref, "latest"
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		repo, tag = ref[:i], ref[i+1:]
	}
	patterns := append([]string{"kura:*", "*/kura:*", "*/*/kura:*"}, a.cfg.KuraImages...)
	for _, p := range patterns {
		if ok, _ := path.Match(p, repo+":"+tag); ok {
			return imageKura, nil
		}
	}
	switch path.Base(repo) {
	case "mariadb":
		return imageMariaDB, nil
	case "mysql":
		return imageMySQL, nil
	}
	return 0, fmt.Errorf("image %q is not available on the local cluster: only mariadb:*, mysql:* (the host's MariaDB install) and the kura operator image (kura:*, */kura:*) map to this host", image)
}

// containerSpec turns a container into what the init step needs.
func (w *podWorker) containerSpec(pod *corev1.Pod, c *corev1.Container) (*containerinit.Spec, string, error) {
	kind, err := w.a.resolveImage(c.Image)
	if err != nil {
		return nil, "ErrImagePull", err
	}
	w.mu.Lock()
	sb := w.sb
	w.mu.Unlock()
	env, err := w.buildEnv(pod, c, sb.ip)
	if err != nil {
		return nil, "CreateContainerConfigError", err
	}
	uid, gid, groups, err := credentials(pod, c)
	if err != nil {
		return nil, "CreateContainerConfigError", err
	}
	argv := expandArgs(c.Command, c.Args, env)
	if len(argv) == 0 {
		switch kind {
		case imageMariaDB:
			argv = []string{"mariadbd"}
		case imageMySQL:
			argv = []string{"mysqld"}
		case imageKura:
			argv = []string{"/kura"}
		}
	}
	mounts, err := w.containerMounts(pod, c)
	if err != nil {
		return nil, "CreateContainerConfigError", err
	}
	if kind == imageKura {
		if w.a.cfg.KuraBinary == "" {
			return nil, "ErrImagePull", fmt.Errorf("image %q needs the kura binary: start the agent with --kura-binary", c.Image)
		}
		mounts = append(mounts, containerinit.Mount{Source: w.a.cfg.KuraBinary, Target: "/kura", ReadOnly: true})
	}
	hostname, fqdn := podHostname(pod)
	files := map[string]string{
		"/etc/hostname": hostname + "\n",
		"/etc/hosts":    hostsFile(pod, sb.ip, hostname, fqdn),
	}
	if rc, err := resolvConf(pod); err != nil {
		return nil, "CreateContainerConfigError", err
	} else {
		files["/etc/resolv.conf"] = rc
	}
	if pod.Spec.SetHostnameAsFQDN != nil && *pod.Spec.SetHostnameAsFQDN && fqdn != "" {
		hostname = fqdn
	}
	readOnly := c.SecurityContext != nil && c.SecurityContext.ReadOnlyRootFilesystem != nil && *c.SecurityContext.ReadOnlyRootFilesystem
	return &containerinit.Spec{
		NetNS:        sb.netnsPath(),
		Hostname:     hostname,
		Mounts:       mounts,
		Files:        files,
		ReadOnlyRoot: readOnly,
		UID:          uid, GID: gid, Groups: groups,
		WorkingDir: c.WorkingDir,
		Argv:       argv,
		Env:        env,
	}, "", nil
}

// credentials resolves runAsUser, runAsGroup, fsGroup and supplementalGroups; images run as
// root unless told otherwise.
func credentials(pod *corev1.Pod, c *corev1.Container) (uint32, uint32, []uint32, error) {
	var uid, gid int64
	var nonRoot bool
	psc := pod.Spec.SecurityContext
	if psc != nil {
		if psc.RunAsUser != nil {
			uid = *psc.RunAsUser
		}
		if psc.RunAsGroup != nil {
			gid = *psc.RunAsGroup
		}
		if psc.RunAsNonRoot != nil {
			nonRoot = *psc.RunAsNonRoot
		}
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = *sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = *sc.RunAsGroup
		}
		if sc.RunAsNonRoot != nil {
			nonRoot = *sc.RunAsNonRoot
		}
	}
	if nonRoot && uid == 0 {
		return 0, 0, nil, fmt.Errorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)", pod.Name, c.Name)
	}
	var groups []uint32
	if psc != nil {
		if psc.FSGroup != nil {
			groups = append(groups, uint32(*psc.FSGroup))
		}
		for _, g := range psc.SupplementalGroups {
			groups = append(groups, uint32(g))
		}
	}
	return uint32(uid), uint32(gid), groups, nil
}

// containerMounts maps volumeMounts onto the Pod's volume directories.
func (w *podWorker) containerMounts(pod *corev1.Pod, c *corev1.Container) ([]containerinit.Mount, error) {
	mounts := make([]containerinit.Mount, 0, len(c.VolumeMounts))
	vms := append([]corev1.VolumeMount(nil), c.VolumeMounts...)
	// Parents before children, so a nested mount is not hidden by its parent's.
	sort.SliceStable(vms, func(i, j int) bool { return len(vms[i].MountPath) < len(vms[j].MountPath) })
	for _, vm := range vms {
		src, ok := w.volumes[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volume %q of mount %s not found", vm.Name, vm.MountPath)
		}
		sub := vm.SubPath
		if vm.SubPathExpr != "" {
			env, err := w.buildEnv(pod, c, w.sb.ip)
			if err != nil {
				return nil, err
			}
			sub = expand(vm.SubPathExpr, envMap(env))
		}
		if sub != "" {
			if strings.Contains(sub, "..") || filepath.IsAbs(sub) {
				return nil, fmt.Errorf("invalid subPath %q", sub)
			}
			src = filepath.Join(src, sub)
			if _, err := os.Stat(src); os.IsNotExist(err) {
				if err := os.MkdirAll(src, 0o755); err != nil {
					return nil, fmt.Errorf("failed to create subPath %s: %w", sub, err)
				}
			}
		}
		mounts = append(mounts, containerinit.Mount{Source: src, Target: vm.MountPath, ReadOnly: vm.ReadOnly})
	}
	return mounts, nil
}

// podHostname returns the Pod's host name and, with a subdomain, its FQDN.
func podHostname(pod *corev1.Pod) (string, string) {
	h := pod.Name
	if pod.Spec.Hostname != "" {
		h = pod.Spec.Hostname
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	if pod.Spec.Subdomain == "" {
		return h, ""
	}
	return h, fmt.Sprintf("%s.%s.%s.svc.%s", h, pod.Spec.Subdomain, pod.Namespace, localcluster.ClusterDomain)
}

func hostsFile(pod *corev1.Pod, ip, hostname, fqdn string) string {
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file (kura-local).\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	if pod.Spec.HostNetwork {
		if host, err := os.ReadFile("/etc/hosts"); err == nil {
			return string(host)
		}
	}
	if fqdn != "" {
		fmt.Fprintf(&b, "%s\t%s\t%s\n", ip, fqdn, hostname)
	} else {
		fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
	}
	for _, ha := range pod.Spec.HostAliases {
		fmt.Fprintf(&b, "%s\t%s\n", ha.IP, strings.Join(ha.Hostnames, "\t"))
	}
	return b.String()
}

func resolvConf(pod *corev1.Pod) (string, error) {
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	if pod.Spec.HostNetwork && policy == corev1.DNSClusterFirst {
		policy = corev1.DNSDefault
	}
	var servers, searches, options []string
	switch policy {
	case corev1.DNSDefault:
		data, err := os.ReadFile("/etc/resolv.conf")
		if err != nil {
			return "", fmt.Errorf("failed to read host resolv.conf: %w", err)
		}
		if pod.Spec.DNSConfig == nil {
			return string(data), nil
		}
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) > 1 && f[0] == "nameserver" {
				servers = append(servers, f[1])
			}
		}
	case corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet:
		servers = []string{localcluster.HostIP}
		d := localcluster.ClusterDomain
		searches = []string{pod.Namespace + ".svc." + d, "svc." + d, d}
		options = []string{"ndots:5"}
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		servers = append(servers, dc.Nameservers...)
		searches = append(searches, dc.Searches...)
		for _, o := range dc.Options {
			if o.Value != nil {
				options = append(options, o.Name+":"+*o.Value)
			} else {
				options = append(options, o.Name)
			}
		}
	}
	var b strings.Builder
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(searches, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.String(), nil
}

func hostIPAddr() string { return localcluster.HostIP }
