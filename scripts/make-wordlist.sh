#!/bin/sh
# Regenerates data/words.txt, the word list the DGA n-gram model is trained on, from Debian's
# `wamerican` package (SCOWL, permissive licence; see data/words.LICENSE). Lower-case ASCII
# words of 3 to 12 letters, every second one, plus common hostname tokens.
set -eu
cd "$(dirname "$0")/.."
dict=/usr/share/dict/american-english
[ -r "$dict" ] || { apt-get install -y wamerican >/dev/null; }
{
  grep -E '^[a-z]{3,12}$' "$dict" | awk 'NR % 2 == 1'
  printf '%s\n' api app apps auth cdn cloud mail login portal secure static update updates \
    sync telemetry metrics analytics assets media images img video stream web www online \
    service services account accounts office docs drive store shop news blog wiki dev prod \
    stage test admin support help status connect gateway edge proxy net group tech soft
} | sort -u > data/words.txt
sed -n '/^Copyright: (extracted/,$p' /usr/share/doc/wamerican/copyright > data/words.LICENSE
wc -l data/words.txt
