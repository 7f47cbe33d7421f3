package backup

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkRowCounter is the row counter's throughput on rows like the benchmark source's.
func BenchmarkRowCounter(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("USE `app`;\nINSERT INTO `big` VALUES\n")
	for i := 0; sb.Len() < 8<<20; i++ {
		fmt.Fprintf(&sb, "(%d,'%s'),\n", i, strings.Repeat(fmt.Sprintf("%08x", i*2654435761), 28))
	}
	sb.WriteString("(0,'');\n")
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := newRowCounter()
		for off := 0; off < len(data); off += 32 << 10 {
			_, _ = c.Write(data[off:min(off+32<<10, len(data))])
		}
	}
}
