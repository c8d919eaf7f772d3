package revocation

import (
	"os"
	"syscall"
)

// datasync writes f's data to the disk, and of its metadata only what is
// needed to read the data back (fdatasync): the journal's blocks are all
// allocated when it is made, so no metadata is written at all.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
