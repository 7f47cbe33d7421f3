// Package backup takes backups of one instance and stores them (docs/backup.md): the
// storage layout and manifest (pure), the runner of `kura backup run` (logical with
// mariadb-dump, physical through the source's agent), streamed tool → zstd → SHA-256 →
// storage with bounded memory. Nothing here talks to the Kubernetes API: the Job's
// termination message carries a short summary to the operator, the manifest in storage is
// the whole record.
package backup

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
)

// Layout places a cluster lineage's objects (docs/backup.md, "Storage layout"):
//
//	<namespace>/<cluster>/<lineage>/backups/<backup>/data.<kind>.<compression>
//	<namespace>/<cluster>/<lineage>/backups/<backup>/manifest.json   (written last)
//	<namespace>/<cluster>/<lineage>/binlog/…                         (next: the binlog archive)
//
// relative to the storage's own prefix (spec.storage.s3.prefix or the PVC's subPath). The
// lineage is the MySQLCluster's UID: a cluster restored from a backup is a new lineage and
// never writes into its source's archive.
type Layout struct {
	Namespace, Cluster, Lineage string
}

var keyPart = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9._-]*[a-zA-Z0-9])?$`)

// Validate refuses parts that would make keys ambiguous.
func (l Layout) Validate() error {
	for name, v := range map[string]string{"namespace": l.Namespace, "cluster": l.Cluster, "lineage": l.Lineage} {
		if !keyPart.MatchString(v) {
			return fmt.Errorf("invalid %s %q in the storage layout", name, v)
		}
	}
	return nil
}

// Root is the lineage's prefix.
func (l Layout) Root() string { return path.Join(l.Namespace, l.Cluster, l.Lineage) + "/" }

// BackupsPrefix holds every backup of the lineage.
func (l Layout) BackupsPrefix() string { return l.Root() + "backups/" }

// BackupPrefix holds one backup's objects.
func (l Layout) BackupPrefix(name string) string { return l.BackupsPrefix() + name + "/" }

// ManifestKey is the backup's manifest: the backup exists once it does.
func (l Layout) ManifestKey(name string) string { return l.BackupPrefix(name) + ManifestName }

// ManifestName is the manifest's file name.
const ManifestName = "manifest.json"

// DataName is the file name of a backup's data stream.
func DataName(method kurav1alpha1.BackupMethod, c kurav1alpha1.Compression) string {
	kind := "sql"
	if method == kurav1alpha1.BackupMethodPhysical {
		kind = "kuracopy"
	}
	return "data." + kind + Extension(c)
}

// Extension is the file suffix of a compression.
func Extension(c kurav1alpha1.Compression) string {
	switch c {
	case kurav1alpha1.CompressionGzip:
		return ".gz"
	case kurav1alpha1.CompressionNone:
		return ""
	default:
		return ".zst"
	}
}

// BackupNameOf returns the backup name of a key under BackupsPrefix ("" if it is not one).
func (l Layout) BackupNameOf(key string) string {
	rest, ok := strings.CutPrefix(key, l.BackupsPrefix())
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, "/")
	return name
}
