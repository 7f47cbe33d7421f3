package backup

import (
	"encoding/json"
	"fmt"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
)

// ManifestFormat is the version of the manifest's layout; a reader refuses newer ones.
const ManifestFormat = 1

// Manifest describes one complete backup. It is written last: a backup without its
// manifest does not exist (dba rule 16).
type Manifest struct {
	Format    int    `json:"format"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Cluster   string `json:"cluster"`
	Lineage   string `json:"lineage"`

	Method      kurav1alpha1.BackupMethod `json:"method"`
	Compression kurav1alpha1.Compression  `json:"compression"`
	// Databases limits a logical backup (empty: everything, and the backup can seed a
	// cluster).
	Databases []string `json:"databases,omitempty"`

	Engine        kurav1alpha1.Engine `json:"engine"`
	EngineVersion string              `json:"engineVersion"`
	// Tool and ToolVersion produced the data (mariadb-dump, mariadb-backup).
	Tool        string `json:"tool"`
	ToolVersion string `json:"toolVersion,omitempty"`

	Source Source `json:"source"`

	// Consistent is the point the data is consistent with.
	Consistent Point `json:"consistent"`

	Started   time.Time `json:"started"`
	Completed time.Time `json:"completed"`

	// Objects are the backup's data streams (one today), with sizes and checksums.
	Objects []Object `json:"objects"`

	// Tables are the row counts of every table in the backup, counted exactly in the dump
	// as it streamed (logical backups; a physical copy stream does not show rows, so it has
	// none). A restore verification compares them with the restored tables.
	Tables []TableRows `json:"tables,omitempty"`
}

// Source is the instance the backup was read from.
type Source struct {
	Instance string `json:"instance"`
	ServerID uint32 `json:"serverID,omitempty"`
	// Role of the instance when the backup started (replica or primary).
	Role string `json:"role,omitempty"`
}

// Point is a consistent point of the data.
type Point struct {
	// GTIDSet is the executed GTID set of the data: with MariaDB, the full state (every
	// domain and server) for a physical backup, the per-domain position for a logical one.
	GTIDSet string `json:"gtidSet"`
	// Time is when the point was reached, at most seconds after the real moment (logical:
	// when the dump's snapshot was reported; physical: the end of the copy, where commits
	// were blocked). Restores choose a base by comparing this end time.
	Time time.Time `json:"time"`
	// BinlogFile and BinlogPosition on the source, where the tool reports them.
	BinlogFile     string `json:"binlogFile,omitempty"`
	BinlogPosition uint64 `json:"binlogPosition,omitempty"`
	// ExecutedBefore and ExecutedAfter are the source's executed sets read around the
	// backup (physical backups; they bound the point).
	ExecutedBefore string `json:"executedBefore,omitempty"`
	ExecutedAfter  string `json:"executedAfter,omitempty"`
}

// Object is one stored data stream.
type Object struct {
	// Name is relative to the backup's prefix.
	Name string `json:"name"`
	// Size and SHA256 are of the stored (compressed) bytes.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// RawSize is the tool's output before compression.
	RawSize int64 `json:"rawSize"`
}

// Encode returns the manifest as indented JSON.
func (m Manifest) Encode() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("failed to encode manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// DecodeManifest reads a manifest, refusing a format this version does not know.
func DecodeManifest(b []byte) (Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("failed to decode manifest: %w", err)
	}
	if m.Format < 1 || m.Format > ManifestFormat {
		return m, fmt.Errorf("failed to decode manifest: format %d is not supported (this Kura reads up to %d)", m.Format, ManifestFormat)
	}
	return m, nil
}
