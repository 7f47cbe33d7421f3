package localcluster

// Abandon drops the machine lock as if the holding process had died, leaving its cluster
// running.
func (c *Config) Abandon() { c.unlockMachine() }
