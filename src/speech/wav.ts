/** 16-bit PCM WAV files: what the transcription endpoint receives and `--record` writes. */

export interface Pcm {
  /** Interleaved signed 16-bit samples. */
  samples: Int16Array;
  sampleRate: number;
  channels: number;
}

export function encodeWav({ samples, sampleRate, channels }: Pcm): Buffer {
  const data = Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(channels, 22);
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * channels * 2, 28);
  header.writeUInt16LE(channels * 2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}

/** Read a 16-bit PCM WAV; throws on anything else. */
export function decodeWav(file: Buffer): Pcm {
  if (file.toString('ascii', 0, 4) !== 'RIFF' || file.toString('ascii', 8, 12) !== 'WAVE') {
    throw new Error('not a WAV file');
  }
  let offset = 12;
  let format: { channels: number; sampleRate: number; bits: number; tag: number } | undefined;
  while (offset + 8 <= file.length) {
    const id = file.toString('ascii', offset, offset + 4);
    // A streamed WAV may carry 0 or 0xffffffff as the data size: take the rest of the file.
    const declared = file.readUInt32LE(offset + 4);
    const size = Math.min(declared, file.length - offset - 8);
    const body = offset + 8;
    if (id === 'fmt ') {
      format = {
        tag: file.readUInt16LE(body),
        channels: file.readUInt16LE(body + 2),
        sampleRate: file.readUInt32LE(body + 4),
        bits: file.readUInt16LE(body + 14),
      };
    } else if (id === 'data') {
      if (!format) throw new Error('WAV data before its format');
      if (format.bits !== 16 || (format.tag !== 1 && format.tag !== 0xfffe)) {
        throw new Error('only 16-bit PCM WAV is supported');
      }
      const length = declared === 0 ? file.length - body : size;
      const copy = Buffer.from(file.subarray(body, body + length - (length % 2)));
      return {
        samples: new Int16Array(copy.buffer, copy.byteOffset, copy.length / 2),
        sampleRate: format.sampleRate,
        channels: format.channels,
      };
    }
    offset = body + size + (size % 2);
  }
  throw new Error('WAV file has no data');
}

/** Samples as a little-endian byte buffer (a view, no copy). */
export function pcmBytes(samples: Int16Array): Buffer {
  return Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
}

/** A little-endian byte buffer as samples (copied when unaligned). */
export function bytesToSamples(bytes: Buffer): Int16Array {
  const aligned = bytes.byteOffset % 2 === 0 ? bytes : Buffer.from(bytes);
  return new Int16Array(aligned.buffer, aligned.byteOffset, Math.floor(aligned.length / 2));
}
