import { parse } from 'node:path';

/** The name a video's MP3 goes by: the video's name with `.mp3` for its extension. */
export const mp3Name = (videoName: string): string => `${parse(videoName).name || 'audio'}.mp3`;
