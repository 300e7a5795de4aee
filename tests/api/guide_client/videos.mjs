// The guide's lib/api/videos.ts, as plain JavaScript (the types dropped, nothing else changed).
import apiClient from './client.mjs';

export const videoApi = {
  create: async (data) => {
    const response = await apiClient.post('/videos', data);
    return response.data.data;
  },

  remix: async (videoId, data) => {
    const response = await apiClient.post(`/videos/${videoId}/remix`, data);
    return response.data.data;
  },

  getVideo: async (videoId) => {
    const response = await apiClient.get(`/videos/${videoId}`);
    return response.data.data;
  },

  listVideos: async (limit = 20, offset = 0) => {
    const response = await apiClient.get(`/videos?limit=${limit}&offset=${offset}`);
    return response.data.data;
  },

  deleteVideo: async (videoId) => {
    await apiClient.delete(`/videos/${videoId}`);
  },

  getDownloadUrl: (videoId) => {
    const baseUrl = process.env.NEXT_PUBLIC_API_URL || 'http://localhost:3000/api';
    return `${baseUrl}/videos/${videoId}/download`;
  },
};
